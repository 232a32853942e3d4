// Backend URLs for suites that run across processes: each call gets its own Redis key prefix or
// PostgreSQL schema on the shared test servers, and a cleanup that removes it.
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import pg from "pg";

export const REDIS_URL = process.env["OFFLOAD_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";
export const POSTGRES_URL = process.env["OFFLOAD_TEST_POSTGRES_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";

export interface IsolatedUrl {
  readonly url: string;
  readonly cleanup: () => Promise<void>;
}

const unique = (prefix: string): string => `${prefix}${randomBytes(5).toString("hex")}`;

export async function isolatedRedisUrl(name = "p"): Promise<IsolatedUrl> {
  const prefix = unique(name);
  return {
    url: `${REDIS_URL}/?prefix=${prefix}`,
    cleanup: async () => {
      const admin = new Redis(REDIS_URL);
      try {
        let cursor = "0";
        do {
          const [next, keys] = await admin.scan(cursor, "MATCH", `{${prefix}}*`, "COUNT", 1_000);
          if (keys.length > 0) await admin.unlink(...keys);
          cursor = next;
        } while (cursor !== "0");
      } finally {
        await admin.quit();
      }
    },
  };
}

export async function isolatedPostgresUrl(name = "p"): Promise<IsolatedUrl> {
  const schema = unique(`${name}_`);
  return {
    url: `${POSTGRES_URL}?schema=${schema}`,
    cleanup: async () => {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}
