export { ConfigError, type ConfigIssue } from './errors.js';
export { baseConfig, DEFAULT_PRESET, findPreset, presets, type ConfigOverrides, type Preset } from './presets.js';
export { mergeConfig, parseSetArgument, resolveConfig, toNativeConfig, type ResolveOptions } from './resolve.js';
export { runConfigSchema, type MethodConfig, type RunConfig } from './schema.js';
