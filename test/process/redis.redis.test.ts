import { isolatedRedisUrl } from "../support/isolated-urls.ts";
import { defineProcessSuite } from "./suite.ts";

defineProcessSuite("redis", () => isolatedRedisUrl("proc"));
