// The HTTP suite on Redis: the web process and a worker process share one key prefix.
import { after } from "node:test";
import { isolatedRedisUrl, type IsolatedUrl } from "../support/isolated-urls.ts";
import { defineHttpSuite } from "./suite.ts";

const made: IsolatedUrl[] = [];
after(async () => {
  for (const m of made) await m.cleanup();
});
defineHttpSuite("redis", async () => {
  const isolated = await isolatedRedisUrl("http");
  made.push(isolated);
  return isolated.url;
});
