// Free loopback ports for the servers a test starts itself (redis-server, PostgreSQL, PgBouncer,
// HTTP): the OS picks one, and the listener is closed again before the server takes it.
import { once } from "node:events";
import { createServer } from "node:net";

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}
