// Redis over TLS: the settings a rediss URL asks for (?tlsCaFile=, ?tlsCertFile=, ?tlsKeyFile=),
// and the connectors that make its connections. ioredis's own connector leaves a TLS socket that
// fails twice without an error listener, and a Cluster's slot refresh drops its connections'
// errors: the connectors here keep the socket quiet after its first error, and record that error
// for the client they serve.
import { type KeyObject, X509Certificate, createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { type ConnectionOptions, type TLSSocket, connect as connectTls, rootCertificates } from "node:tls";
import { AbstractConnector, type Cluster, Redis, type RedisOptions, SentinelConnector, type SentinelConnectionOptions } from "ioredis";
import { BackendOpenError } from "../../core/errors.ts";

/** The files a TLS URL names: ?tlsCaFile=, ?tlsCertFile=, ?tlsKeyFile= (null: not given). */
export interface TlsFiles {
  readonly ca: string | null;
  readonly cert: string | null;
  readonly key: string | null;
}

/**
 * The TLS settings of a URL: none for plain schemes, the system's CAs for rediss ones, and those
 * plus the PEM file `?tlsCaFile=` names (a private CA, as a self-managed server's certificate is
 * signed by) when given; a client certificate and its key (`?tlsCertFile=`, `?tlsKeyFile=`: a
 * server run with tls-auth-clients) when given. Read once, when the client is made.
 */
export function tlsSettings(url: string, scheme: string, files: TlsFiles): ConnectionOptions | undefined {
  const secure = scheme.startsWith("rediss");
  const given = (["ca", "cert", "key"] as const).filter((file) => files[file] !== null);
  // rediss:// too, though ioredis reads that scheme itself: it reads it case-sensitively
  // (REDISS:// connected in plain text), and TLS connections get their own connector.
  if (given.length === 0) return secure ? {} : undefined;
  if (!secure) {
    const names = given.map((file) => PARAM[file]);
    const listed = names.length === 1 ? `${names[0]} needs` : `${names.slice(0, -1).join(", ")} and ${names.at(-1)} need`;
    throw new BackendOpenError(url, `${listed} a TLS URL (rediss://, rediss+cluster://, rediss+sentinel://)`);
  }
  if ((files.cert === null) !== (files.key === null)) {
    throw new BackendOpenError(url, files.cert === null ? "?tlsKeyFile= needs ?tlsCertFile=, the client certificate it is the key of" : "?tlsCertFile= needs ?tlsKeyFile=, the client certificate's private key");
  }
  // Node takes whatever content as CAs without a word (a DER file, a key, an empty file), and every
  // connection then failed after the reply timeout as "self-signed certificate", blaming the CA.
  const ca = files.ca === null ? {} : { ca: [...rootCertificates, certificates(url, "ca", files.ca, "ca.pem").pem] };
  if (files.cert === null || files.key === null) return ca;
  // A client certificate Node cannot use failed each connection as it was made (a key it cannot
  // read, or one of another certificate), and the client then stopped connecting for good.
  const key = privateKey(url, files.key);
  const cert = certificates(url, "cert", files.cert, "client.crt");
  if (!cert.leaf.checkPrivateKey(key.object)) {
    throw new BackendOpenError(url, `?tlsKeyFile= ${files.key} is not the private key of the certificate in ?tlsCertFile= ${files.cert} (its first, the client's own)`);
  }
  return { ...ca, cert: cert.pem, key: key.pem };
}

const PARAM = { ca: "?tlsCaFile=", cert: "?tlsCertFile=", key: "?tlsKeyFile=" } as const;

function readFile(url: string, file: keyof TlsFiles, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new BackendOpenError(url, `cannot read ${PARAM[file]} ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** The PEM certificates of a file (a CA, or a client certificate and the chain after it), each checked. */
function certificates(url: string, file: "ca" | "cert", path: string, pemName: string): { pem: string; leaf: X509Certificate } {
  const pem = readFile(url, file, path);
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  const read = blocks.map((block) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw new BackendOpenError(url, `${PARAM[file]} ${path} holds a certificate that cannot be read: ${error instanceof Error ? error.message : String(error)}`);
    }
  });
  const [leaf] = read;
  if (leaf === undefined) {
    throw new BackendOpenError(url, `${PARAM[file]} ${path} holds no PEM certificate ("-----BEGIN CERTIFICATE-----"); a DER file converts with openssl x509 -inform DER -in <file> -out ${pemName}`);
  }
  return { pem, leaf };
}

/** The PEM private key of ?tlsKeyFile=, checked: one Node reads, with no passphrase. */
function privateKey(url: string, path: string): { pem: string; object: KeyObject } {
  const pem = readFile(url, "key", path);
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|^Proc-Type: 4,ENCRYPTED/m.test(pem)) {
    throw new BackendOpenError(url, `?tlsKeyFile= ${path} holds an encrypted private key, and a URL gives no passphrase; decrypt it with openssl pkey -in <file> -out client.key`);
  }
  if (!/-----BEGIN (?:RSA |EC )?PRIVATE KEY-----/.test(pem)) {
    throw new BackendOpenError(url, `?tlsKeyFile= ${path} holds no PEM private key ("-----BEGIN PRIVATE KEY-----"); a DER file converts with openssl pkey -inform DER -in <file> -out client.key`);
  }
  try {
    return { pem, object: createPrivateKey(pem) };
  } catch (error) {
    throw new BackendOpenError(url, `?tlsKeyFile= ${path} holds a private key that cannot be read: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * What a connection's error says. A TLS error as OpenSSL words it names OpenSSL's own source
 * ("40BD…:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:
 * ../deps/openssl/openssl/ssl/record/rec_layer_s3.c:918:SSL alert number 116"): its reason
 * instead, and when the server asked for a client certificate or refused the one given, that.
 */
export function connectionError(error: Error): string {
  const reason = tlsReason(error);
  if (reason === undefined) return error.message;
  const alert = /alert (.+)$/.exec(reason)?.[1];
  if (alert === "certificate required") return `the server requires a client certificate (TLS alert "${alert}"): give one with ?tlsCertFile= and ?tlsKeyFile=`;
  // Alerts a server sends about the certificate it was given: the client's.
  if (alert !== undefined && /^(?:bad certificate|unknown ca|certificate (?:unknown|expired|revoked)|unsupported certificate)$/.test(alert)) {
    return `the server refused the client certificate (TLS alert "${alert}")`;
  }
  return `TLS: ${reason}`;
}

/** OpenSSL's reason for a TLS error ("tlsv1 alert unknown ca"); undefined for every other error. */
function tlsReason(error: Error): string | undefined {
  return "library" in error && error.library === "SSL routines" && "reason" in error && typeof error.reason === "string" ? error.reason : undefined;
}

/**
 * A TLS socket can fail twice: the client refuses the server's certificate (an error), then fails
 * to read what the server sent next in the same burst (an alert answering a connection ended
 * mid-handshake, as a Cluster does to node connections when its slot refresh fails: a second
 * error). ioredis listens for the first error only, and the second, with no listener, was an
 * uncaught exception that ended the process. The socket is closed by then; later errors are
 * dropped. Given as the connector of every data connection over TLS (a Cluster passes it to its
 * node connections, and to the ones its slot refresh makes), of a Sentinel client's connections
 * to the sentinels, and of the change feed's connection to a Cluster (tlsClusterSubscriber).
 */
function quietAfterFirstError<T extends { on(event: "error", listener: () => void): unknown }>(stream: T): T {
  stream.on("error", () => {});
  return stream;
}

/** What the TLS connections made for one client met (see connectionFailures). */
export interface ConnectionFailures {
  /** The latest failure. */
  latest: Error | undefined;
  /** The latest TLS alert a server sent (see failureMet). */
  alert: Error | undefined;
}

/**
 * The failure to tell of: the latest, or the latest TLS alert when the latest was a reset. A
 * server that refuses the client's certificate sends an alert and closes the connection, and the
 * client's first write (ioredis writes as soon as the handshake is over) may meet the reset
 * before the alert is read: that connection's alert is lost (about 1 connection in 5 here).
 */
export function failureMet(failures: ConnectionFailures): Error | undefined {
  const { latest, alert } = failures;
  const reset = latest !== undefined && "code" in latest && (latest.code === "ECONNRESET" || latest.code === "EPIPE");
  return reset && alert !== undefined ? alert : latest;
}

/**
 * Per client made over TLS: the latest failure of the connections made for it. A Cluster's slot
 * refresh makes connections of its own and drops their errors, so a Cluster that could not
 * connect said only "Failed to refresh slots cache.", whatever the reason: a certificate not
 * trusted, expired, or for another host. InFlightCalls says this one instead.
 */
export const connectionFailures = new WeakMap<Redis | Cluster, ConnectionFailures>();

/**
 * The latest failure of a TLS connection made for `client` (a Cluster's slot refreshes included);
 * undefined for a client that does not use TLS.
 */
export function latestConnectionFailure(client: Redis | Cluster): ConnectionFailures | undefined {
  return connectionFailures.get(client);
}

/** A TlsConnector class that records its sockets' first errors in `failures`. */
export function tlsConnector(failures: ConnectionFailures): typeof TlsConnector {
  return class extends TlsConnector {
    protected override failed(error: Error): void {
      failures.latest = error;
      if (tlsReason(error)?.includes(" alert ") === true) failures.alert = error;
    }
  };
}

/** A server's address. */
export interface Address {
  readonly host: string;
  readonly port: number;
}

/** ioredis's own connector for one server, over TLS only, its socket kept from failing twice. */
class TlsConnector extends AbstractConnector {
  readonly #options: ConnectionOptions;

  constructor(options: unknown) {
    const given = (options ?? {}) as RedisOptions;
    super(given.disconnectTimeout ?? 2_000);
    // ioredis 6.1 has turned a profile's name (tls: "RedisCloudFixed") into its options before it
    // makes a connector; tls: true (TLS with the defaults) has no options to add.
    const tls = typeof given.tls === "object" ? given.tls : {};
    this.#options = { ...tls, host: given.host, port: given.port, ...(given.family === undefined ? {} : { family: given.family }) };
  }

  /** Told of each socket's first error. */
  protected failed(_error: Error): void {}

  /** Where to connect this time: the server of the client's options, unless overridden. */
  protected address(): Partial<Address> {
    return {};
  }

  override connect(): Promise<TLSSocket> {
    this.connecting = true;
    // On the next tick, as ioredis does: a disconnect() made meanwhile cancels the attempt.
    return new Promise((resolve, reject) => {
      process.nextTick(() => {
        if (!this.connecting) return reject(new Error("Connection is closed."));
        let stream: TLSSocket;
        try {
          stream = connectTls({ ...this.#options, ...this.address() });
        } catch (error) {
          return reject(error instanceof Error ? error : new Error(String(error)));
        }
        this.stream = stream;
        stream.once("error", (error) => {
          this.firstError = error;
          this.failed(error);
        });
        resolve(quietAfterFirstError(stream));
      });
    });
  }
}

/**
 * A Sentinel client's connector over TLS whose connections to the sentinels record their sockets'
 * first errors in `failures` (a sentinel that refuses every connection made ioredis say only "All
 * sentinels are unreachable. … Last error: Connection is closed.").
 */
export function tlsSentinelConnector(failures: ConnectionFailures): typeof TlsSentinelConnector {
  const toSentinels = tlsConnector(failures);
  return class extends TlsSentinelConnector {
    protected override readonly sentinelConnector = toSentinels;
  };
}

/**
 * ioredis's Sentinel connector, its sockets kept from failing twice: the master's, and those to
 * the sentinels themselves (to ask for the master, and to hear of a failover).
 */
class TlsSentinelConnector extends SentinelConnector {
  /** The connector of the connections to the sentinels. */
  protected readonly sentinelConnector: typeof TlsConnector = TlsConnector;

  constructor(options: unknown) {
    super(options as SentinelConnectionOptions); // ioredis gives a Sentinel client's options
  }

  override async connect(emit: Parameters<SentinelConnector["connect"]>[0]): ReturnType<SentinelConnector["connect"]> {
    return quietAfterFirstError(await super.connect(emit));
  }

  static {
    // ioredis makes its connections to the sentinels in a private method, connectToSentinel, with
    // options of its own that name no connector: their TLS sockets were ioredis's, and one that
    // failed twice ended the process. The method takes options that override its own, and ours add
    // the connector. A private method cannot be overridden in TypeScript, hence the property; if a
    // later ioredis renames it, this does nothing, and redis-tls.redis.test.ts fails.
    const connectToSentinel: unknown = Reflect.get(SentinelConnector.prototype, "connectToSentinel");
    if (typeof connectToSentinel === "function") {
      Reflect.defineProperty(this.prototype, "connectToSentinel", {
        value(this: TlsSentinelConnector, endpoint: unknown, options?: RedisOptions): unknown {
          return Reflect.apply(connectToSentinel, this, [endpoint, { ...options, Connector: this.sentinelConnector }]);
        },
      });
    }
  }
}

/**
 * The connection the change feed subscribes on, for a Cluster made over TLS: one connection to a
 * node of `cluster`, chosen at random at each (re)connection among those it knows (its `seeds`
 * while it knows none), as ioredis's own Cluster pub/sub connection is (a PUBLISH reaches every
 * node of a Cluster). ioredis makes that connection with options of its own, which name no
 * connector: a socket of it that failed twice (a node's certificate refused, then the alert)
 * ended the process. This one is made by our connector, with the Cluster's node options (its
 * credentials, TLS settings, reconnecting for ever), and leaves a node the Cluster drops.
 */
export function tlsClusterSubscriber(cluster: Cluster, nodeOptions: RedisOptions, seeds: readonly Address[], failures: ConnectionFailures): Redis {
  let node: Address | undefined;
  class AnyNode extends tlsConnector(failures) {
    protected override address(): Partial<Address> {
      const known = cluster.nodes("all").flatMap(({ options: { host, port } }) => (host === undefined || port === undefined ? [] : [{ host, port }]));
      const from = known.length > 0 ? known : seeds;
      node = from[Math.floor(Math.random() * from.length)] ?? node;
      return node ?? {}; // seeds are never empty (seedNodes)
    }
  }
  const subscriber = new Redis({ ...nodeOptions, Connector: AnyNode });
  // A node that left the Cluster (failed, removed) no longer hears of the others' publishes.
  const left = (dropped: Redis): void => {
    if (node !== undefined && dropped.options.host === node.host && dropped.options.port === node.port) subscriber.disconnect(true);
  };
  cluster.on("-node", left);
  subscriber.once("end", () => cluster.off("-node", left));
  return subscriber;
}

/** A cluster's dnsLookup that keeps names as given (see createClient, connection.ts). */
export function keepHostName(address: string, callback: (error: null, address: string) => void): void {
  callback(null, address);
}
