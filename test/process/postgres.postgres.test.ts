import { isolatedPostgresUrl } from "../support/isolated-urls.ts";
import { defineProcessSuite } from "./suite.ts";

defineProcessSuite("postgres", () => isolatedPostgresUrl("proc"));
