/**
 * Dataset failures. `ERR_INVALID_DATA`: a file that is corrupt, truncated,
 * of the wrong format, shape, label range or checksum, named with what was
 * expected. `ERR_DATASET_MISSING`: a downloadable dataset whose files are not
 * in the data folder and could not be fetched (offline); the message names
 * the files, their URLs and the folder to put them in. `ERR_DATASET_UNAVAILABLE`:
 * a dataset name this version does not know (the CLI treats that as a bad
 * config, exit 2, since nothing was attempted).
 */
export type DatasetErrorCode = 'ERR_INVALID_DATA' | 'ERR_DATASET_MISSING' | 'ERR_DATASET_UNAVAILABLE';

export class DatasetError extends Error {
  readonly code: DatasetErrorCode;
  /** The file (or, for a missing or unavailable dataset, the dataset name) at fault. */
  readonly file: string;
  constructor(file: string, problem: string, code: DatasetErrorCode = 'ERR_INVALID_DATA') {
    super(`${file}: ${problem}`);
    this.name = 'DatasetError';
    this.file = file;
    this.code = code;
  }
}
