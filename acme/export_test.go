package acme

// SetFaultHook sets the finalize fault hook for a test and returns a
// function that removes it.
func SetFaultHook(f func(stage string)) (restore func()) {
	faultHook = f
	return func() { faultHook = nil }
}
