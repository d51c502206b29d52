#include "store/checksums.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <vector>

#include "util/error.h"
#include "util/file.h"
#include "util/sha256.h"

namespace lincat {

namespace fs = std::filesystem;

std::string write_checksums(const std::string& dir) {
    std::vector<std::string> files;
    for (auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && e.path().filename() != "checksum.txt") files.push_back(e.path().filename().string());
    std::sort(files.begin(), files.end());
    std::string sums;
    for (auto& f : files) sums += sha256_file(dir + "/" + f) + "  " + f + "\n";
    write_file_atomic(dir + "/checksum.txt", sums);
    return sha256_file(dir + "/checksum.txt");
}

static std::map<std::string, std::string> read_checksums(const std::string& dir) {
    std::string sums = read_file(dir + "/checksum.txt", 1 << 16);
    std::map<std::string, std::string> out;
    size_t pos = 0;
    while (pos < sums.size()) {
        size_t end = sums.find('\n', pos);
        if (end == std::string::npos) end = sums.size();
        std::string line = sums.substr(pos, end - pos);
        if (line.size() > 66) out[line.substr(66)] = line.substr(0, 64);
        pos = end + 1;
    }
    return out;
}

void verify_checksum(const std::string& dir, const std::string& file) {
    const auto sums = read_checksums(dir);
    auto it = sums.find(file);
    if (it == sums.end()) {
        const bool legacy = !sums.count("linearization.json");
        if (legacy && file.find(".safetensors") == std::string::npos) return;
        fail(dir, "/checksum.txt: no sha256 recorded for ", file);
    }
    std::string actual = sha256_file(dir + "/" + file);
    if (it->second != actual)
        fail(dir, "/", file, ": sha256 ", actual, " does not match checksum.txt (", it->second,
             "); the checkpoint is corrupt");
}

}  // namespace lincat
