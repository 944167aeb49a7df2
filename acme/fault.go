package acme

// faultHook, when set (by tests only, through export_test.go), is called
// at the named points of a finalize — "claimed" after the order is claimed,
// "issued" after the certificate and the order's final state committed —
// so a test can stop the request there as a crash would.
var faultHook func(stage string)

func fault(stage string) {
	if faultHook != nil {
		faultHook(stage)
	}
}
