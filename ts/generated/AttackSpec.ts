// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.
import type { AutoAttackVersion } from "./AutoAttackVersion.js";
import type { Keep } from "./Keep.js";
import type { Norm } from "./Norm.js";

/**
 * An attack as the evaluation receives it (JSON, from TS). Names are what
 * reports show; they must be unique within one evaluation.
 */
export type AttackSpec = {
  "kind": "clean",
  name: string,
} | {
  "kind": "fgsm",
  name: string,
  norm: Norm,
  epsilon: number,
  keep: Keep,
} | {
  "kind": "pgd",
  name: string,
  norm: Norm,
  epsilon: number,
  stepSize: number,
  steps: number,
  restarts: number,
  randomStart: boolean,
  keep: Keep,
} | {
  "kind": "cw",
  name: string,
  epsilon: number,
  stepSize: number,
  steps: number,
  restarts: number,
  randomStart: boolean,
  keep: Keep,
} | {
  "kind": "run",
  name: string,
} | {
  "kind": "apgdCe",
  name: string,
  norm: Norm,
  epsilon: number,
  steps: number,
  restarts: number,
  eotIter: number,
} | {
  "kind": "apgdDlr",
  name: string,
  norm: Norm,
  epsilon: number,
  steps: number,
  restarts: number,
  eotIter: number,
} | {
  "kind": "apgdT",
  name: string,
  norm: Norm,
  epsilon: number,
  steps: number,
  restarts: number,
  targets: number,
} | {
  "kind": "fabT",
  name: string,
  norm: Norm,
  epsilon: number,
  steps: number,
  restarts: number,
  targets: number,
} | {
  "kind": "square",
  name: string,
  norm: Norm,
  epsilon: number,
  queries: number,
  restarts: number,
} | {
  "kind": "autoAttack",
  name: string,
  norm: Norm,
  epsilon: number,
  version: AutoAttackVersion,
};
