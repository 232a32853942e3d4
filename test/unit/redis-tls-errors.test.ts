// What a Redis client over TLS says of its connections' failures: OpenSSL's errors by their reason,
// a server's refusal of the client certificate as such, and the alert that a reset hid. Errors are
// shaped as Node makes them (library, reason and code on the Error), as a test server sent them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { connectionError, failureMet } from "../../src/backend/redis/tls.ts";

/** A TLS error as Node gives it for OpenSSL's `reason`. */
function openSslError(reason: string, code: string): Error {
  const message = `40BDC849797F0000:error:0A00045C:SSL routines:ssl3_read_bytes:${reason}:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:918:SSL alert number 116\n`;
  return Object.assign(new Error(message), { library: "SSL routines", reason, code });
}

const reset = Object.assign(new Error("write ECONNRESET"), { code: "ECONNRESET" });
const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6380"), { code: "ECONNREFUSED" });

describe("redis over TLS: a connection's error", () => {
  it("is OpenSSL's reason, not its source location, and says what a server's alert about the client certificate means", () => {
    assert.equal(
      connectionError(openSslError("tlsv13 alert certificate required", "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED")),
      'the server requires a client certificate (TLS alert "certificate required"): give one with ?tlsCertFile= and ?tlsKeyFile=',
    );
    assert.equal(connectionError(openSslError("tlsv1 alert unknown ca", "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA")), 'the server refused the client certificate (TLS alert "unknown ca")');
    assert.equal(connectionError(openSslError("sslv3 alert certificate expired", "ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED")), 'the server refused the client certificate (TLS alert "certificate expired")');
    assert.equal(connectionError(openSslError("decryption failed or bad record mac", "ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC")), "TLS: decryption failed or bad record mac");
  });

  it("is the error's own message for other errors: the client refusing the server's certificate, a refused connection", () => {
    const untrusted = Object.assign(new Error("self-signed certificate in certificate chain"), { code: "SELF_SIGNED_CERT_IN_CHAIN" });
    assert.equal(connectionError(untrusted), "self-signed certificate in certificate chain");
    assert.equal(connectionError(refused), "connect ECONNREFUSED 127.0.0.1:6380");
  });
});

describe("redis over TLS: the failure told of", () => {
  const alert = openSslError("tlsv1 alert unknown ca", "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA");

  it("is the latest TLS alert when the latest failure was a reset: a write that met the closed connection before its alert was read", () => {
    assert.equal(failureMet({ latest: reset, alert }), alert);
    assert.equal(failureMet({ latest: Object.assign(new Error("write EPIPE"), { code: "EPIPE" }), alert }), alert);
  });

  it("is the latest failure otherwise: a reset with no alert seen, or a server now gone", () => {
    assert.equal(failureMet({ latest: reset, alert: undefined }), reset);
    assert.equal(failureMet({ latest: refused, alert }), refused);
    assert.equal(failureMet({ latest: undefined, alert: undefined }), undefined);
  });
});
