export { App } from './App.js';
export { bar, duration, num, pct } from './format.js';
export { epochEtaSeconds, initialState, reduce, runEtaSeconds, type EpochRow, type TrainViewState } from './state.js';
export { TrainStore } from './store.js';
export { TrainView } from './TrainView.js';
