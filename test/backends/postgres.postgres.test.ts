// The conformance suite on PostgreSQL, unchanged: each case in its own schema on the shared server.
import { defineBackendSuite } from "../conformance/suite.ts";
import { openIsolated } from "./postgres-helpers.ts";

defineBackendSuite("postgres", () => openIsolated());
