#include "model/fingerprint.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <vector>

#include "model/safetensors.h"
#include "util/file.h"
#include "util/sha256.h"

namespace lincat {

namespace fs = std::filesystem;

std::string model_fingerprint(const std::string& model_dir) {
    Sha256 h;
    std::string config = read_file(model_dir + "/config.json", 16 << 20);
    h.update(config.data(), config.size());
    std::vector<std::string> files;
    for (auto& e : fs::directory_iterator(model_dir))
        if (e.path().extension() == ".safetensors") files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
        MappedFile m = MappedFile::open(f);
        uint64_t n = 0;
        if (m.size() >= 8) std::memcpy(&n, m.data(), 8);
        size_t head = size_t(std::min<uint64_t>(m.size(), 8 + std::min<uint64_t>(n, kMaxSafetensorsHeaderBytes)));
        h.update(m.data(), head);
        uint64_t size = m.size();
        h.update(&size, 8);
    }
    return h.hex_digest();
}

}  // namespace lincat
