// hello-go: a small HTTP service, the Go half of the hello example.
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"os"
)

// Version changes when the code does; the benchmark edits it and waits for the new answer.
const Version = "v1"

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"service": "hello-go", "version": Version, "message": "Hello from Go",
		})
	})
	log.Printf("hello-go %s listening on :%s", Version, port)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
