// Machine-readable job events: one JSON object per line, {"event": TYPE, "time": seconds since
// the epoch, ...}, beside the human progress lines. Written only when a sink is open (`lincat
// --events fd:N|PATH`); the studio reads them instead of parsing what people read. Types:
//   run        {"run", "kind"}                         a run starts or resumes in this process
//   phase      {"name"}                                loading, data, stage 1, evaluation, ...
//   progress   {"label", "done", "total", "unit", "rate", "eta_seconds"} (+ training: "tokens",
//              "loss", "lr", "tokens_per_second")
//   evaluation {"run", "step", "loss", "layer_mse"}
//   warning    {"message"}
//   result     the command's final result (what --json prints)
//   error      {"message"}
// A sink that stops accepting writes (the reader went away) is closed, never an error of the job.
#pragma once

#include <string>

#include "util/json.h"

namespace lincat {

// "fd:N" (an inherited descriptor) or a file path (appended). Throws naming the spec.
void open_event_sink(const std::string& spec);
void close_event_sink();
bool events_enabled();
void emit_event(const std::string& type, json fields = json::object());

}  // namespace lincat
