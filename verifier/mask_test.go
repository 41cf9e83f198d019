package verifier

import "testing"

func TestMaskFreeText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"geen nummer", "geen nummer"},
		{"BSN 999990019.", "BSN [nummer weggelaten]."},
		{"9999.90.019 en 9999 90 019 en 9999-90-019", "[nummer weggelaten] en [nummer weggelaten] en [nummer weggelaten]"},
		{"m999990019", "m[nummer weggelaten]"},
		{"tel 06-12345678, casus 2025-0042, 18-03-2025", "tel 06-12345678, casus 2025-0042, 18-03-2025"},
		{"1234567890 is tien cijfers", "1234567890 is tien cijfers"},
		{"123456789 (geen elfproef, toch verborgen)", "[nummer weggelaten] (geen elfproef, toch verborgen)"},
	} {
		if got := MaskFreeText(tc.in); got != tc.want {
			t.Errorf("MaskFreeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := UnknownValueNL("school-typfout"); got != "onbekende waarde (14 tekens)" {
		t.Errorf("UnknownValueNL = %q", got)
	}
}
