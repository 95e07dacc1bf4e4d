/**
 * Dataset failures. `ERR_INVALID_DATA`: a file that is missing, corrupt or
 * truncated, named with what was expected. `ERR_DATASET_UNAVAILABLE`: a
 * dataset the config names but this version cannot load yet (the CLI treats
 * that as a bad config, exit 2, since nothing was attempted).
 */
export type DatasetErrorCode = 'ERR_INVALID_DATA' | 'ERR_DATASET_UNAVAILABLE';

export class DatasetError extends Error {
  readonly code: DatasetErrorCode;
  /** The file (or, for an unavailable dataset, the dataset name) at fault. */
  readonly file: string;
  constructor(file: string, problem: string, code: DatasetErrorCode = 'ERR_INVALID_DATA') {
    super(`${file}: ${problem}`);
    this.name = 'DatasetError';
    this.file = file;
    this.code = code;
  }
}
