package wechatpay

// The published test keys, for the external end-to-end tests: the official
// apiclient_test_key.pem plays the merchant, wechatpay-go's key the platform.
var (
	TestOfficialKeyPEM = testingKey(officialTestKeyPEM)
	TestWxgoKeyPEM     = testingKey(wxgoTestKeyPEM)
)
