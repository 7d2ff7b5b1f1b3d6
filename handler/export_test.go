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
