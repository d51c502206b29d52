// Helpers shared by tests: temp folders, the default model's location, error matching.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cstdio>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

#include "model/model_dir.h"

namespace lincat::test {

// A fresh folder under the system temp dir, removed when the object dies.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        char tmpl[] = "/tmp/lincat-test-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

// The imported default model. Tests that need it fail (not skip): the README's test
// command runs packaging/setup.sh first, which puts it there.
inline std::string default_model_dir() {
    std::string dir = cache_dir() + "/models/stories15M";
    if (!std::filesystem::exists(dir + "/config.json"))
        ADD_FAILURE() << "default model missing at " << dir << "; run packaging/setup.sh";
    return dir;
}

// Files written while it lives may not grow past `bytes` (writes fail with EFBIG, not SIGXFSZ):
// a full disk for the write paths under test.
struct FileSizeLimit {
    rlimit old{};
    void (*old_handler)(int);
    explicit FileSizeLimit(rlim_t bytes) {
        old_handler = signal(SIGXFSZ, SIG_IGN);
        getrlimit(RLIMIT_FSIZE, &old);
        rlimit lim = old;
        lim.rlim_cur = bytes;
        setrlimit(RLIMIT_FSIZE, &lim);
    }
    ~FileSizeLimit() {
        setrlimit(RLIMIT_FSIZE, &old);
        signal(SIGXFSZ, old_handler);
    }
};

// Runs fn and checks it throws std::runtime_error whose message contains every needle.
inline void expect_error(const std::function<void()>& fn, std::initializer_list<std::string> needles) {
    try {
        fn();
        ADD_FAILURE() << "expected an error mentioning '" << *needles.begin() << "', got none";
    } catch (const std::exception& e) {
        std::string msg = e.what();
        for (auto& n : needles)
            EXPECT_NE(msg.find(n), std::string::npos) << "error '" << msg << "' lacks '" << n << "'";
    }
}

// Runs a shell command; returns its exit code (-1 if it did not exit normally) and stdout.
struct CommandResult {
    int code;
    std::string out;
};
inline CommandResult run_command(const std::string& cmd) {
    CommandResult r{-1, ""};
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return r;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    int status = pclose(p);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

}  // namespace lincat::test
