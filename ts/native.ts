/**
 * Loads the native addon and wraps it in the typed `NativeBinding` of
 * native-types.ts. The addon speaks JSON strings (one typed contract, here);
 * this file parses them, maps AbortSignal onto the native cancel flag, and
 * turns `[CODE] message` rejections into Errors with a `code`.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type {
  EvalResult,
  ModelInfo,
  NativeBinding,
  NativeDataset,
  NativeEvalConfig,
  NativeTrainConfig,
  RuntimeInfo,
  TrainEvent,
  TrainSummary,
} from './native-types.js';

/** The raw addon surface (see native/node/src/lib.rs). */
interface RawAddon {
  listModels(numClasses: number): string;
  runtimeInfo(): string;
  train(
    configJson: string,
    dataset: {
      train: { images: Uint8Array; labels: Uint8Array };
      test: { images: Uint8Array; labels: Uint8Array };
      validation?: { images: Uint8Array; labels: Uint8Array };
      channels: number;
      height: number;
      width: number;
    },
    onEvent: (eventJson: string) => void,
    cancel: RawCancelToken,
  ): Promise<string>;
  evaluate(
    checkpoint: string,
    model: string,
    numClasses: number,
    data: { images: Uint8Array; labels: Uint8Array },
    shape: number[],
    evalConfigJson: string,
    device: string,
    seed: number,
    epoch: number,
  ): Promise<string>;
  CancelToken: new () => RawCancelToken;
}

interface RawCancelToken {
  cancel(): void;
  readonly cancelled: boolean;
}

/** An error from the native core, with a stable `code` (e.g. ERR_INVALID_CONFIG). */
export class NativeError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'NativeError';
    this.code = code;
  }
}

function toNativeError(e: unknown): Error {
  const message = e instanceof Error ? e.message : String(e);
  const m = /^\[(ERR_[A-Z_]+)\] ([\s\S]*)$/.exec(message);
  return m ? new NativeError(m[1]!, m[2]!) : e instanceof Error ? e : new Error(message);
}

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/ts/native.js -> <package>/native/node/st-native.node */
export const addonPath = path.resolve(here, '..', '..', 'native', 'node', 'st-native.node');

let cached: NativeBinding | undefined;

export function loadNative(): NativeBinding {
  if (cached) return cached;
  if (!existsSync(addonPath)) {
    throw new NativeError(
      'ERR_NATIVE_MISSING',
      `native addon not built: ${addonPath} is missing. Run \`npm install\` (or \`npm run build\`) in the st-native package.`,
    );
  }
  const raw = createRequire(import.meta.url)(addonPath) as RawAddon;
  cached = wrap(raw);
  return cached;
}

function wrap(raw: RawAddon): NativeBinding {
  return {
    listModels: (numClasses: number) => JSON.parse(raw.listModels(numClasses)) as ModelInfo[],
    runtimeInfo: () => JSON.parse(raw.runtimeInfo()) as RuntimeInfo,
    async train(config: NativeTrainConfig, data: NativeDataset, onEvent: (event: TrainEvent) => void, signal?: AbortSignal) {
      const token = new raw.CancelToken();
      const onAbort = () => token.cancel();
      if (signal?.aborted) token.cancel();
      signal?.addEventListener('abort', onAbort, { once: true });
      // A throwing event handler must not crash the process from inside a
      // native callback: stop training instead and reject with its error.
      let handlerError: unknown;
      const deliver = (json: string) => {
        if (handlerError !== undefined) return;
        try {
          onEvent(JSON.parse(json) as TrainEvent);
        } catch (e) {
          handlerError = e;
          token.cancel();
        }
      };
      try {
        const summary = await raw.train(
          JSON.stringify(config),
          { train: data.train, test: data.test, validation: data.validation, channels: data.channels, height: data.height, width: data.width },
          deliver,
          token,
        );
        if (handlerError !== undefined) throw handlerError;
        return JSON.parse(summary) as TrainSummary;
      } catch (e) {
        throw e === handlerError ? e : toNativeError(e);
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
    },
    async evaluate(checkpoint, model, numClasses, data, evalConfig: NativeEvalConfig, device, seed, epoch) {
      try {
        const json = await raw.evaluate(
          checkpoint,
          model,
          numClasses,
          { images: data.images, labels: data.labels },
          [data.channels, data.height, data.width],
          JSON.stringify(evalConfig),
          device,
          seed,
          epoch,
        );
        return JSON.parse(json) as EvalResult;
      } catch (e) {
        throw toNativeError(e);
      }
    },
  };
}
