/**
 * Wraps the native addon (loaded by native-loader.ts) in the typed
 * `NativeBinding` of native-types.ts. The addon speaks JSON strings (one
 * typed contract, here); this file parses them, maps AbortSignal onto the
 * native cancel flag, and turns `[CODE] message` rejections into Errors with
 * a `code`.
 */
import { isMainThread } from 'node:worker_threads';
import { EventRelay } from './event-relay.js';
import { loadAddon, NativeError, type Loaded } from './native-loader.js';
import type { LibtorchFound } from './runtime/libtorch.js';
import type {
  CheckpointInfo,
  DataSizes,
  EvalEvent,
  EvalReport,
  EvalRequest,
  EvalResult,
  ModelInfo,
  ModelName,
  NativeBinding,
  NativeDataset,
  NativeEvalConfig,
  NativeTrainConfig,
  RuntimeInfo,
  TrainEvent,
  TrainSummary,
} from './native-types.js';

/**
 * The raw addon surface: the declarations napi-rs generates from
 * native/node/src/lib.rs at build time (never written by hand), so a changed
 * export signature stops this file from compiling.
 */
type RawAddon = typeof import('../native/node/binding.cjs');

export { NativeError };

export function toNativeError(e: unknown): Error {
  const message = e instanceof Error ? e.message : String(e);
  const m = /^\[(ERR_[A-Z_]+)\] ([\s\S]*)$/.exec(message);
  return m ? new NativeError(m[1]!, m[2]!) : e instanceof Error ? e : new Error(message);
}

let cached: NativeBinding | undefined;
let loaded: Loaded<RawAddon> | undefined;
let loadError: NativeError | undefined;

/** Loads libtorch and the addon once (see native-loader.ts); throws a NativeError with the fix. */
export function loadNative(): NativeBinding {
  if (cached) return cached;
  if (loadError) throw loadError;
  try {
    loaded = loadAddon<RawAddon>();
  } catch (e) {
    // Loading is not retried: a half-loaded libtorch stays in the process.
    loadError = e instanceof NativeError ? e : new NativeError('ERR_NATIVE_LOAD', e instanceof Error ? e.message : String(e));
    throw loadError;
  }
  const raw = loaded.addon;
  // Native jobs must stop before libtorch is torn down at exit (a second
  // Ctrl-C, process.exit() from a caller, an uncaught error): tell the addon
  // as soon as Node announces the exit. Only the main thread's exit is the
  // process's exit; a worker's 'exit' is its own.
  // The addon ends the process at once when a job is still running then, so
  // the listener is moved to the end of the list whenever a job starts: the
  // caller's own 'exit' listeners run first.
  const onExit = (code: unknown) => raw.noteProcessExit(typeof code === 'number' ? code : 1);
  const listenLast = () => {
    if (!isMainThread) return;
    process.off('exit', onExit);
    process.on('exit', onExit);
  };
  listenLast();
  cached = wrap(raw, listenLast);
  return cached;
}

/** Runs a synchronous addon call, turning `[CODE] message` errors into NativeErrors. */
function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw toNativeError(e);
  }
}

/** What `st-native doctor` reports about the native side. */
export interface NativeStatus {
  loaded: boolean;
  addonPath: string | null;
  addonPackage: string | null;
  libtorch: LibtorchFound | null;
  cuda: boolean;
  cudaError: string | null;
  error: { code: string; message: string } | null;
  runtime: RuntimeInfo | null;
}

/** Tries to load the native side and says how it went; never throws. */
export function nativeStatus(): NativeStatus {
  try {
    const runtime = loadNative().runtimeInfo();
    return {
      loaded: true,
      addonPath: loaded!.addonPath,
      addonPackage: loaded!.addonPackage,
      libtorch: loaded!.libtorch,
      cuda: loaded!.cuda,
      cudaError: loaded!.cudaError,
      error: null,
      runtime,
    };
  } catch (e) {
    const err = e as { code?: string; message?: string };
    return {
      loaded: false,
      addonPath: null,
      addonPackage: null,
      libtorch: null,
      cuda: false,
      cudaError: null,
      error: { code: err.code ?? 'ERR_NATIVE_LOAD', message: err.message ?? String(e) },
      runtime: null,
    };
  }
}


function wrap(raw: RawAddon, beforeJob: () => void): NativeBinding {
  return {
    listModels: (numClasses: number) => JSON.parse(call(() => raw.listModels(numClasses))) as ModelInfo[],
    runtimeInfo: () => JSON.parse(call(() => raw.runtimeInfo())) as RuntimeInfo,
    preflight: (config: NativeTrainConfig, shape: [number, number, number], sizes: DataSizes) =>
      call(() => raw.preflight(JSON.stringify(config), shape, sizes.train, sizes.test, sizes.validation)),
    inspectCheckpoint: (file: string) => JSON.parse(call(() => raw.inspectCheckpoint(file))) as CheckpointInfo,
    checkCheckpoint: (file: string, model: ModelName, numClasses: number, shape: readonly number[]) =>
      call(() => raw.checkCheckpoint(file, model, numClasses, [...shape])),
    async train(config: NativeTrainConfig, data: NativeDataset, onEvent: (event: TrainEvent) => void, signal?: AbortSignal) {
      beforeJob();
      const token = new raw.CancelToken();
      const onAbort = () => token.cancel();
      if (signal?.aborted) token.cancel();
      signal?.addEventListener('abort', onAbort, { once: true });
      const relay = new EventRelay<TrainEvent>(onEvent, () => token.cancel());
      try {
        const summary = await raw.train(
          JSON.stringify(config),
          { train: data.train, test: data.test, validation: data.validation, channels: data.channels, height: data.height, width: data.width },
          relay.deliver,
          token,
        );
        // Handlers still running decide too: a late rejection fails the run.
        await relay.settle();
        if (relay.handlerFailed) throw relay.handlerError;
        return JSON.parse(summary) as TrainSummary;
      } catch (e) {
        throw relay.handlerFailed ? relay.handlerError : toNativeError(e);
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
    },
    async evaluate(checkpoint, model, numClasses, data, evalConfig: NativeEvalConfig, device, seed, epoch) {
      beforeJob();
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
    async evaluateAttacks(request: EvalRequest, data, onEvent: (event: EvalEvent) => unknown, signal?: AbortSignal) {
      if (signal?.aborted) throw abortReason(signal);
      beforeJob();
      const token = new raw.CancelToken();
      const onAbort = () => token.cancel();
      signal?.addEventListener('abort', onAbort, { once: true });
      // As for train: a handler that throws (or rejects) stops the evaluation
      // and becomes its error.
      const relay = new EventRelay<EvalEvent>(onEvent, () => token.cancel());
      try {
        const json = await raw.evaluateAttacks(
          JSON.stringify(request),
          { images: data.images, labels: data.labels },
          [data.channels, data.height, data.width],
          relay.deliver,
          token,
        );
        await relay.settle();
        if (relay.handlerFailed) throw relay.handlerError;
        const report = JSON.parse(json) as EvalReport | null;
        if (report === null) throw signal ? abortReason(signal) : new NativeError('ERR_CANCELLED', 'the evaluation was cancelled');
        return report;
      } catch (e) {
        throw relay.handlerFailed ? relay.handlerError : e instanceof NativeError || (signal?.aborted && e === signal.reason) ? e : toNativeError(e);
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
    },
  };
}

/** What an aborted signal rejects with: its reason, else an AbortError. */
function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}
