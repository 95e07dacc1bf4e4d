/**
 * The names the API takes as literal types, so an editor completes them and
 * a typo is a compile error, with run-time guards for names that arrive as
 * plain strings (command lines, JSON, JavaScript callers).
 */

/**
 * Every preset's name (`presets` lists them with descriptions). Kept as a
 * list here because the paper presets are generated; test/types.test.ts
 * checks it against `presets` both ways.
 */
export const PRESET_NAMES = [
  'mnist-st-quick',
  'mnist-natural-quick',
  'mnist-pgd-at-quick',
  'mnist-trades-quick',
  'mnist-mart-quick',
  'mnist-collaborative-quick',
  'mnist-trades-awp-quick',
  'mnist-st-awp-quick',
  'cifar10-resnet18-st',
  'cifar10-resnet18-pgd-at',
  'cifar10-resnet18-trades',
  'cifar10-resnet18-mart',
  'cifar100-resnet18-st',
  'cifar100-resnet18-pgd-at',
  'cifar100-resnet18-trades',
  'cifar100-resnet18-mart',
  'svhn-resnet18-st',
  'svhn-resnet18-pgd-at',
  'svhn-resnet18-trades',
  'svhn-resnet18-mart',
  'cifar10-wrn34_10-st',
  'cifar10-wrn34_10-pgd-at',
  'cifar10-wrn34_10-trades',
  'cifar10-wrn34_10-mart',
  'cifar10-wrn34_5-st',
  'cifar10-wrn34_5-pgd-at',
  'cifar10-wrn34_5-trades',
  'cifar10-wrn34_5-mart',
  'cifar10-resnet18-collaborative',
  'cifar10-preact_resnet18-trades-awp',
  'cifar10-preact_resnet18-st-awp',
  'cifar10-wrn34_10-trades-awp',
  'cifar10-wrn34_10-st-awp',
  'cifar100-preact_resnet18-trades-awp',
  'cifar100-preact_resnet18-st-awp',
  'cifar100-wrn34_10-trades-awp',
  'cifar100-wrn34_10-st-awp',
  'cifar10-wrn28_10-rst',
  'cifar10-wrn28_10-st-rst',
] as const;

export type PresetName = (typeof PRESET_NAMES)[number];

export function isPresetName(value: unknown): value is PresetName {
  return typeof value === 'string' && (PRESET_NAMES as readonly string[]).includes(value);
}

/** AutoAttack and its components (each also with `-l2`). */
export const AUTOATTACK_NAMES = ['aa', 'aa-rand', 'apgd-ce', 'apgd-dlr', 'apgd-t', 'fab-t', 'square'] as const;

type L2 = '' | '-l2';
type Restarts = '' | `x${number}`;

/**
 * An attack by name: `clean`, `run`, `fgsm`, `pgdN` (also `pgd-N`), `cw` or
 * `cwN` (`cw-N`), `xR` after pgd/cw for R restarts, `-l2` after fgsm/pgd,
 * and the AutoAttack names. (`${number}` admits more than the digits the
 * names take: `isAttackName` and the evaluation check them exactly.)
 */
export type AttackName =
  | 'clean'
  | 'run'
  | `fgsm${L2}`
  | `pgd${number}${Restarts}${L2}`
  | `cw${'' | number}${Restarts}`
  | `${(typeof AUTOATTACK_NAMES)[number]}${L2}`;

/** The numbered attacks: pgdN, cw, cwN (a dash before the steps allowed), restarts, -l2. */
export const NUMBERED_ATTACK = /^(?:(fgsm)|pgd-?(\d+)|cw(?:-?(\d+))?)(?:x(\d+))?(-l2)?$/;
/** AutoAttack and its components, each with `-l2`. */
export const AUTOATTACK_ATTACK = new RegExp(`^(${AUTOATTACK_NAMES.join('|')})(-l2)?$`);

/** A name the evaluation takes (restart and step counts are range-checked there). */
export function isAttackName(value: unknown): value is AttackName {
  return typeof value === 'string' && (value === 'clean' || value === 'run' || NUMBERED_ATTACK.test(value) || AUTOATTACK_ATTACK.test(value));
}
