// The HTTP suite on PostgreSQL: the web process and a worker process share one schema.
import { after } from "node:test";
import { isolatedPostgresUrl, type IsolatedUrl } from "../support/isolated-urls.ts";
import { defineHttpSuite } from "./suite.ts";

const made: IsolatedUrl[] = [];
after(async () => {
  for (const m of made) await m.cleanup();
});
defineHttpSuite("postgres", async () => {
  const isolated = await isolatedPostgresUrl("http");
  made.push(isolated);
  return isolated.url;
});
