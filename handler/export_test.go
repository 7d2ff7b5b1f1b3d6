package handler

// PeakQueuedBytes returns the most bytes one client's send queue has held
// since the last ResetPeakQueuedBytes.
func PeakQueuedBytes() int64 { return peakQueued.Load() }

// ResetPeakQueuedBytes starts a new measurement.
func ResetPeakQueuedBytes() { peakQueued.Store(0) }

// ObserveCalls makes f see a copy of every call's CallInfo until the
// test ends.
func ObserveCalls(t interface{ Cleanup(func()) }, f func(CallInfo)) {
	g := func(info *CallInfo) { f(*info) }
	callObserver.Store(&g)
	t.Cleanup(func() { callObserver.Store(nil) })
}

// StopProjectWatches stops every live handler's watch of project
// changes, as if a change came while two configs overlapped and reached
// neither.
func StopProjectWatches() {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	for _, hs := range registry.live {
		for _, h := range hs {
			if h.unwatch != nil {
				h.unwatch()
				h.unwatch = nil
			}
		}
	}
}

// DirectWritesCut is how many direct writes left a rest to the writer.
func DirectWritesCut() int64 { return directWritesCut.Load() }
