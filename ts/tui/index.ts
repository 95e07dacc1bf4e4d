export { App } from './App.js';
export { bar, duration, etaText, lr, num, pct } from './format.js';
export { evalLeftSeconds, runEta, trainLeftSeconds, type Eta, type EtaInput, type EvalUnderWay } from './eta.js';
export {
  epochEtaSeconds,
  evalEtaSeconds,
  initialState,
  isSettled,
  pendingRow,
  reduce,
  runEtaOf,
  runEtaSeconds,
  settledRows,
  type EpochRow,
  type EvalProgress,
  type TrainViewState,
} from './state.js';
export { TrainStore } from './store.js';
export { TrainView } from './TrainView.js';
