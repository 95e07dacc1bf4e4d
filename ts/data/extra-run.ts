/**
 * The extra data of a training run (`dataset.extra`): which `.stextra` file
 * the core reads, and making sure it is there and fits the dataset before
 * the run folder exists. The images stay in the file: the core reads them by
 * path, a batch at a time (native/core/src/extra.rs); only the header and
 * the labels are read here.
 *
 * `file: null` means RST's 500K images in the data folder's rst/: imported
 * from the pickle when only the pickle is there, downloaded first when
 * neither is (offline: ERR_DATASET_MISSING saying where to put the pickle).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DatasetError } from './errors.js';
import { openExtraData, type ExtraData } from './extra.js';
import { stderrProgress, type ProgressOutput } from './progress.js';
import { fetchRst, importRst, rstFolder, RST_IMPORTED_NAME } from './rst.js';
import type { Environment } from '../environment.js';

export interface ExtraRequest {
  dataDir?: string | null;
  extra?: { file: string | null; fraction: number } | null;
}

/** The absolute path of the run's `.stextra` file, or null (no extra data). */
export function extraFilePath(dataset: ExtraRequest, env?: Environment): string | null {
  if (!dataset.extra) return null;
  if (dataset.extra.file !== null) return path.resolve(dataset.extra.file);
  return path.join(rstFolder(dataset.dataDir, env), RST_IMPORTED_NAME);
}

export interface ExtraPrepareOptions {
  env?: Environment;
  progress?: ProgressOutput | null;
  signal?: AbortSignal;
}

/**
 * Makes the run's extra data ready and checks it against the dataset's
 * image shape and class count (header, exact size, labels). Returns the
 * opened file, or null when the run has none.
 */
export async function prepareExtra(
  dataset: ExtraRequest,
  fits: { shape: readonly [number, number, number]; numClasses: number },
  options: ExtraPrepareOptions = {},
): Promise<ExtraData | null> {
  const file = extraFilePath(dataset, options.env);
  if (file === null || !dataset.extra) return null;
  if (dataset.extra.file === null && !existsSync(file)) {
    const progress = options.progress === undefined ? stderrProgress(options.env) : options.progress;
    // Offline and absent: fails here with the folder, the URL and the import command.
    const pickle = await fetchRst({ dataDir: dataset.dataDir, env: options.env, progress, signal: options.signal });
    progress?.line(`importing ${pickle.path} into ${file} (once)`);
    importRst(pickle.path, { out: file });
  }
  if (!existsSync(file)) throw new DatasetError(file, 'no such file (dataset.extra.file)');
  const data = openExtraData(file);
  const { channels, height, width } = data.header;
  const [c, h, w] = fits.shape;
  if (channels !== c || height !== h || width !== w) {
    throw new DatasetError(file, `images of ${channels}×${height}×${width}, the dataset's are ${c}×${h}×${w}`);
  }
  let max = 0;
  for (const l of data.labels) if (l > max) max = l;
  if (max >= fits.numClasses) throw new DatasetError(file, `holds label ${max}; the dataset has ${fits.numClasses} classes`);
  return data;
}
