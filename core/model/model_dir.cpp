#include "model/model_dir.h"

#include <cstdlib>
#include <algorithm>
#include <filesystem>

#include "util/error.h"

namespace lincat {

namespace fs = std::filesystem;

std::string cache_dir() {
    if (const char* c = std::getenv("LINCAT_CACHE"); c && *c) return c;
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/lincat";
    if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/lincat";
    fail("cannot find a cache folder: set LINCAT_CACHE or HOME");
}

std::string default_model_name() {
    return "stories15M";
}

std::string resolve_model_dir(const std::string& spec) {
    if (spec.empty() || spec == "default") {
        std::string dir = cache_dir() + "/models/" + default_model_name();
        if (!fs::exists(dir + "/config.json"))
            fail("the default model is not in the cache (", dir, "); run packaging/setup.sh to fetch it");
        return dir;
    }
    if (fs::exists(spec)) return spec;
    std::string cached = cache_dir() + "/models/" + spec;
    if (fs::exists(cached + "/config.json")) return cached;
    fail("model '", spec, "': no such folder, and no model of that name in ", cache_dir(), "/models");
}

std::vector<std::string> cached_models() {
    std::vector<std::string> out;
    fs::path root = fs::path(cache_dir()) / "models";
    std::error_code ec;
    if (!fs::is_directory(root, ec)) return out;
    for (auto& e : fs::directory_iterator(root, ec))
        if (fs::exists(e.path() / "config.json")) out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace lincat
