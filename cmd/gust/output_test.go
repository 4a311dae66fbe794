package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/client"
	"github.com/gust-faas/gust/internal/gust"
)

func TestPrintJSON(t *testing.T) {
	var b bytes.Buffer
	printJSON(&b, []byte(`{"a":[1,{"b":"c"}]}`))
	if want := "{\n  \"a\": [\n    1,\n    {\n      \"b\": \"c\"\n    }\n  ]\n}\n"; b.String() != want {
		t.Errorf("printJSON =\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	printJSON(&b, []byte("not json\n"))
	if b.String() != "not json\n" {
		t.Errorf("printJSON(text) = %q", b.String())
	}
}

func TestPrintActionList(t *testing.T) {
	actions := []gust.Action{
		{Namespace: "guest", Name: "hello", Exec: gust.Exec{Kind: "wasm"}},
		{Namespace: "guest/utils", Name: "echo", Publish: true,
			Annotations: gust.KeyValues{{Key: "exec", Value: json.RawMessage(`"python:3"`)}}},
		{Namespace: "guest", Name: "x"},
	}
	var b bytes.Buffer
	if err := printActionList(&b, actions); err != nil {
		t.Fatal(err)
	}
	want := "actions\n" +
		"/guest/hello        private   wasm\n" +
		"/guest/utils/echo   shared    python:3\n" +
		"/guest/x            private   -\n"
	if b.String() != want {
		t.Errorf("action list =\n%s\nwant\n%s", b.String(), want)
	}
}

func TestPrintActivationList(t *testing.T) {
	status := gust.StatusApplicationError
	acts := []client.ListedActivation{
		{Activation: gust.Activation{
			Namespace: "guest", Name: "hello", Version: "0.0.2", ActivationID: "0123456789abcdef0123456789abcdef",
			Start: time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC).UnixMilli(), End: 1, Duration: 42,
			Annotations: gust.KeyValues{
				{Key: "path", Value: json.RawMessage(`"guest/pkg/hello"`)},
				{Key: "kind", Value: json.RawMessage(`"wasm"`)},
				{Key: "initTime", Value: json.RawMessage(`12`)},
			},
		}},
		{Activation: gust.Activation{
			Namespace: "guest", Name: "hello", ActivationID: "fedcba9876543210fedcba9876543210",
			Start: time.Date(2024, 3, 4, 5, 6, 6, 0, time.UTC).UnixMilli(), End: 2, Duration: 3,
			Annotations: gust.KeyValues{{Key: "kind", Value: json.RawMessage(`"python:3"`)}},
		}, StatusCode: &status},
		{Activation: gust.Activation{Namespace: "guest", Name: "tick", ActivationID: "t1", Start: 0}},
	}
	var b bytes.Buffer
	if err := printActivationList(&b, acts, time.UTC); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"Datetime            Activation ID                    Kind     Start Duration Status            Entity\n" +
		"2024-03-04 05:06:07 0123456789abcdef0123456789abcdef wasm     cold  42ms     success           guest/pkg/hello:0.0.2\n" +
		"2024-03-04 05:06:06 fedcba9876543210fedcba9876543210 python:3 warm  3ms      application error guest/hello\n" +
		"1970-01-01 00:00:00 t1                               -        --    -        success           guest/tick\n"
	if b.String() != want {
		t.Errorf("activation list =\n%s\nwant\n%s", b.String(), want)
	}
}
