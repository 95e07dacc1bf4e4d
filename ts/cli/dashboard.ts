/**
 * The Ink dashboards of `train` and `eval`, loaded only when a terminal shows
 * one. Importing ink and react takes about half a second, more than the rest
 * of the CLI together (`--help` 0.84 s with them, measured with
 * `node -e "await import('./dist/ts/cli/main.js')"`): every `--json`, piped or
 * scripted invocation would pay it for nothing.
 */
import type { TrainStore } from '../tui/store.js';
import type { EvalStore } from './eval-state.js';

/** A mounted dashboard; `unmount` restores the terminal. */
export interface Dashboard {
  unmount(): void;
}

const inkOptions = { exitOnCtrlC: false, patchConsole: false } as const;

export async function showTrainDashboard(store: TrainStore): Promise<Dashboard> {
  const [{ render }, { createElement }, { App }] = await Promise.all([import('ink'), import('react'), import('../tui/App.js')]);
  return render(createElement(App, { store }), inkOptions);
}

export async function showEvalDashboard(store: EvalStore): Promise<Dashboard> {
  const [{ render }, { createElement }, { EvalView }] = await Promise.all([import('ink'), import('react'), import('./eval-view.js')]);
  return render(createElement(EvalView, { store }), inkOptions);
}
