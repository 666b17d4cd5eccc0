package wps_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/wps-bridge/bridge/internal/wps"
)

func ExampleClient_Hub() {
	// A stand-in for the service that prints what it receives.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Println(r.Method, r.RequestURI)
		fmt.Println(r.Header.Get("Content-Type"), string(body))
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()

	client, err := wps.NewClientFromConnectionString("Endpoint=" + srv.URL + ";AccessKey=example-key;Version=1.0;")
	if err != nil {
		log.Fatal(err)
	}
	defer client.CloseIdleConnections()
	hub, err := client.Hub("chat")
	if err != nil {
		log.Fatal(err)
	}
	err = hub.SendToGroup(context.Background(), "room 42", []byte(`{"text":"hi"}`), wps.ContentJSON, &wps.SendOptions{TTL: 30})
	fmt.Println("err:", err, "class:", wps.Classify(err))
	// Output:
	// POST /api/hubs/chat/groups/room%2042/:send?api-version=2024-12-01&messageTtlSeconds=30
	// application/json {"text":"hi"}
	// err: <nil> class: none
}
