// Standard Schema (standardschema.dev) is the common interface that zod, valibot, arktype and
// others implement; accepting it means users keep their validation library. Only the types the
// spec defines are declared here, so Offload has no runtime dependency on any of them.
import { ValidationError, type ValidationIssue } from "./errors.ts";

export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly "~standard": {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<StandardIssue> };

interface StandardIssue {
  readonly message: string;
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
}

export type InferInput<S extends StandardSchemaV1> = NonNullable<S["~standard"]["types"]>["input"];
export type InferOutput<S extends StandardSchemaV1> = NonNullable<S["~standard"]["types"]>["output"];

function issuePath(issue: StandardIssue): string {
  return (issue.path ?? []).map((p) => String(typeof p === "object" ? p.key : p)).join(".");
}

/**
 * The schema's output for `value`, or a ValidationError listing every failing field. `index`: the
 * payload's place in an enqueueMany batch, named in the error.
 */
export async function validate<S extends StandardSchemaV1>(task: string, schema: S, value: unknown, index?: number): Promise<InferOutput<S>> {
  const result = await schema["~standard"].validate(value);
  if (result.issues) {
    const issues: ValidationIssue[] = result.issues.map((i) => ({ path: issuePath(i), message: i.message }));
    throw new ValidationError(task, issues, index);
  }
  return result.value as InferOutput<S>;
}
