export { ConfigError, describeValue, type ConfigIssue } from './errors.js';
export { baseConfig, DEFAULT_PRESET, findPreset, presets, type ConfigOverrides, type Preset } from './presets.js';
export { readJsonFile } from './read-json.js';
export {
  MAX_OVERRIDE_ARRAY_ITEMS,
  MAX_OVERRIDE_DEPTH,
  mergeConfig,
  parseSetArgument,
  resolveConfig,
  toNativeConfig,
  toPlainData,
  type ResolveOptions,
} from './resolve.js';
export { runConfigSchema, type MethodConfig, type RunConfig } from './schema.js';
