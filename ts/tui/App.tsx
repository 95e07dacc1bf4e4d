/** Binds the store to the view; a once-a-second tick keeps the clock and the ETAs moving between events. */
import React, { useEffect, useState, useSyncExternalStore } from 'react';
import { TrainView } from './TrainView.js';
import type { TrainStore } from './store.js';

export function App({ store, tickMs = 1000 }: { store: TrainStore; tickMs?: number }) {
  const state = useSyncExternalStore(store.subscribe, store.getState);
  const [startedAt] = useState(() => Date.now());
  const [, setTick] = useState(0);
  useEffect(() => {
    if (state.phase === 'done') return;
    const t = setInterval(() => setTick((n) => n + 1), tickMs);
    return () => clearInterval(t);
  }, [state.phase, tickMs]);
  const elapsed = state.phase === 'done' ? state.elapsedSec : Math.max(state.elapsedSec, (Date.now() - startedAt) / 1000);
  return <TrainView state={{ ...state, elapsedSec: elapsed }} nowMs={Date.now()} />;
}
