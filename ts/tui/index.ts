export { App } from './App.js';
export { bar, duration, lr, num, pct } from './format.js';
export {
  epochEtaSeconds,
  initialState,
  isSettled,
  pendingRow,
  reduce,
  runEtaSeconds,
  settledRows,
  type EpochRow,
  type TrainViewState,
} from './state.js';
export { TrainStore } from './store.js';
export { TrainView } from './TrainView.js';
