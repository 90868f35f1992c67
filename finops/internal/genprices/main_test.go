package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// sourceDir holds the price source, relative to this package.
const sourceDir = "../../../../shared/data/prices"

// TestEmbeddedTableIsWhatTheGeneratorMakes regenerates the table from the source,
// for the date the embedded table records, and compares the bytes.
func TestEmbeddedTableIsWhatTheGeneratorMakes(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(sourceDir, "genai-prices.v2.data.json"))
	if os.IsNotExist(err) {
		t.Skip("price source absent")
	}
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := os.ReadFile("../../prices.json")
	if err != nil {
		t.Fatal(err)
	}
	var head struct {
		PricesOn string `json:"prices_on"`
	}
	if err := json.Unmarshal(embedded, &head); err != nil {
		t.Fatal(err)
	}
	day, err := time.Parse(time.DateOnly, head.PricesOn)
	if err != nil {
		t.Fatal(err)
	}

	got, err := generate(src, day)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, embedded) {
		t.Fatal("finops/prices.json differs from what genprices makes; regenerate it")
	}
	license, err := os.ReadFile(filepath.Join(sourceDir, "LICENSE"))
	if err != nil {
		t.Fatal(err)
	}
	copied, err := os.ReadFile("../../prices.LICENSE")
	if err != nil || !bytes.Equal(license, copied) {
		t.Fatalf("finops/prices.LICENSE is not the source's license (%v)", err)
	}
}

func TestActivePricesTakesThePriceInForce(t *testing.T) {
	dated := `[{"prices":{"input_mtok":1}},` +
		`{"constraint":{"start_date":"2026-03-01"},"prices":{"input_mtok":2}},` +
		`{"constraint":{"start_date":"2026-09-01"},"prices":{"input_mtok":3}}]`
	tests := []struct {
		name, prices, day, want string
	}{
		{"a single price set", `{"input_mtok":7}`, "2026-12-04", "7"},
		{"before every change", dated, "2026-01-01", "1"},
		{"on the day of a change", dated, "2026-03-01", "2"},
		{"between changes", dated, "2026-06-30", "2"},
		{"after the last change", dated, "2026-12-04", "3"},
		{"before a first price that has a start date",
			`[{"constraint":{"start_date":"2026-03-01"},"prices":{"input_mtok":5}}]`,
			"2026-01-01", "5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			day, _ := time.Parse(time.DateOnly, tt.day)
			got, err := activePrices(json.RawMessage(tt.prices), day)
			if err != nil {
				t.Fatal(err)
			}
			if string(got["input_mtok"]) != tt.want {
				t.Fatalf("input = %s, want %s", got["input_mtok"], tt.want)
			}
		})
	}

	tod := `[{"prices":{}},{"constraint":{"start_time":"16:30:00Z","end_time":"00:30:00Z"},` +
		`"prices":{}}]`
	if _, err := activePrices(json.RawMessage(tod), time.Now()); err == nil {
		t.Error("time-of-day prices were accepted")
	}
}

func TestConvertSplitsTiersByThreshold(t *testing.T) {
	model := sourceModel{
		ID:    "m",
		Match: json.RawMessage(`{"starts_with":"m-"}`),
		Prices: json.RawMessage(`{"input_mtok":{"base":1,"tiers":[{"start":100,"price":2},` +
			`{"start":500,"price":3}]},"output_mtok":{"base":10,"tiers":[{"start":500,` +
			`"price":20}]},"cache_read_mtok":0.1,"input_audio_mtok":40}`),
	}
	m, err := convert("openai", model, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"m","provider":"openai","match":{"starts_with":"m-"},"input":1,` +
		`"cache_read":0.1,"output":10,"tiers":[{"above":100,"input":2,"output":10},` +
		`{"above":500,"input":3,"output":20}]}`
	if string(got) != want {
		t.Fatalf("converted model\n got %s\nwant %s", got, want)
	}
}
