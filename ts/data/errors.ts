/** A dataset file that is missing, corrupt or truncated, named with what was expected. */
export class DatasetError extends Error {
  readonly code = 'ERR_INVALID_DATA';
  readonly file: string;
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = 'DatasetError';
    this.file = file;
  }
}
