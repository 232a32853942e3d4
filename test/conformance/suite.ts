// The conformance suite: the same cases for every backend. An adapter passes when all of them do.
//
//   defineBackendSuite("sqlite", () => openFreshSqlite());
//
// Each case gets a fresh, isolated backend from the factory and closes it afterwards.
import { describe } from "node:test";
import type { Backend } from "../../src/backend/backend.ts";
import type { BackendFactory, UseBackend } from "./fixtures.ts";
import { failureCases } from "./failures.cases.ts";
import { leaseCases } from "./leases.cases.ts";
import { lifecycleCases } from "./lifecycle.cases.ts";
import { readCases } from "./reads.cases.ts";
import { workerCases } from "./worker.cases.ts";

export function defineBackendSuite(name: string, make: BackendFactory): void {
  const use: UseBackend = (body) => async () => {
    const backend: Backend = await make();
    try {
      await body(backend);
    } finally {
      await backend.close();
    }
  };
  describe(`conformance: ${name}`, () => {
    describe("lifecycle", () => lifecycleCases(use));
    describe("leases", () => leaseCases(use));
    describe("failures", () => failureCases(use));
    describe("reads", () => readCases(use));
    describe("worker", () => workerCases(use));
  });
}
