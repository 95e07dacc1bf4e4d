/**
 * The report written automatically when a run, seeds group, sweep or
 * evaluation ends: cheap, and never the reason a run fails. A report that
 * cannot be written (a folder it cannot read, a plot that fails) becomes a
 * note for the caller to show.
 */
import path from 'node:path';

export interface AutoReport {
  /** The report written, or null when it failed. */
  file: string | null;
  /** Why it was not written (null when it was). */
  note: string | null;
}

export async function autoReport(folder: string): Promise<AutoReport> {
  try {
    // Loaded on use: vega stays out of processes that never write a report.
    const { writeReport } = await import('./report.js');
    const r = await writeReport(folder);
    return { file: r.file, note: null };
  } catch (e) {
    return { file: null, note: `${path.join(folder, 'report.html')} not written: ${e instanceof Error ? e.message : String(e)} (try \`st-native report ${folder}\`)` };
  }
}
