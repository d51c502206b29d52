// libFuzzer target: a state dump's manifest.json (block-wise stage 1), and its round trip.
// Any input must give a manifest or a lincat error (std::exception), never a crash, a
// sanitizer report or a hang; a parsed manifest must survive its own writer.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "blocks/state_manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    lincat::StateManifest m;
    try {
        m = lincat::parse_state_manifest(text, "manifest.json");
    } catch (const std::exception&) {
        return 0;
    }
    // What parsed must round-trip (a throw here is a bug: let it crash).
    lincat::StateManifest again = lincat::parse_state_manifest(lincat::state_manifest_to_json(m), "round trip");
    if (again.shards.size() != m.shards.size() || again.total_bytes() != m.total_bytes()) __builtin_trap();
    return 0;
}
