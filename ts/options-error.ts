/**
 * A bad option of an API call or a command (evaluate's runDir, attacks,
 * model, ...), as against a bad config: the same ConfigError (same `code`,
 * `issues`, `instanceof ConfigError`), which the CLI reports as
 * "invalid options:" rather than "invalid config:".
 */
import { ConfigError } from './config/errors.js';

export class OptionsError extends ConfigError {
  constructor(...args: ConstructorParameters<typeof ConfigError>) {
    super(...args);
    this.name = 'OptionsError';
  }
}
