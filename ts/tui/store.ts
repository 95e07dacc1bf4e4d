/**
 * An event-fed store with throttled notifications: step ticks and evaluation
 * progress are coalesced to at most one redraw per `intervalMs`; every other
 * event redraws at once.
 */
import type { TrainEvent } from '../native-types.js';
import { initialState, reduce, type TrainViewState } from './state.js';

export class TrainStore {
  private state: TrainViewState = initialState;
  private readonly listeners = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private lastNotify = 0;

  constructor(
    private readonly intervalMs = 100,
    /** The wall clock events are stamped with (the ETAs count down from it). */
    private readonly clock: () => number = Date.now,
  ) {}

  getState = (): TrainViewState => this.state;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  push(event: TrainEvent): void {
    // Stamped with the time it arrived: the ETAs count down from it.
    this.state = { ...reduce(this.state, event), updatedAtMs: this.clock() };
    if (event.type !== 'step' && event.type !== 'evalProgress') return this.notify();
    const wait = this.intervalMs - (Date.now() - this.lastNotify);
    if (wait <= 0) this.notify();
    else this.timer ??= setTimeout(() => this.notify(), wait);
  }

  /** Shows that a stop was requested (the dashboard owns the terminal, so the CLI says it here, not on stderr). */
  markStopping(): void {
    this.state = { ...this.state, stopping: true };
    this.notify();
  }

  private notify(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.lastNotify = Date.now();
    for (const l of this.listeners) l();
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }
}
