#include "util/events.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace lincat {

namespace {
std::mutex g_mutex;
int g_fd = -1;
bool g_owned = false;
}  // namespace

void open_event_sink(const std::string& spec) {
    std::lock_guard<std::mutex> lock(g_mutex);
    int fd = -1;
    bool owned = false;
    if (spec.rfind("fd:", 0) == 0) {
        char* end = nullptr;
        long n = std::strtol(spec.c_str() + 3, &end, 10);
        if (spec.size() == 3 || *end != '\0' || n < 0 || fcntl(int(n), F_GETFD) == -1)
            fail("--events ", spec, ": not an open file descriptor");
        fd = int(n);
    } else {
        fd = ::open(spec.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) fail("--events ", spec, ": cannot open: ", std::strerror(errno));
        owned = true;
    }
    if (g_owned && g_fd >= 0) ::close(g_fd);
    g_fd = fd, g_owned = owned;
}

void close_event_sink() {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (g_owned && g_fd >= 0) ::close(g_fd);
    g_fd = -1, g_owned = false;
}

bool events_enabled() {
    std::lock_guard<std::mutex> lock(g_mutex);
    return g_fd >= 0;
}

void emit_event(const std::string& type, json fields) {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (g_fd < 0) return;
    json e = {{"event", type},
              {"time", std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()}};
    if (fields.is_object()) e.update(fields);
    // One write per line keeps lines whole for a reader (and below PIPE_BUF, atomic on a pipe).
    const std::string line = e.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    size_t off = 0;
    while (off < line.size()) {
        ssize_t n = ::write(g_fd, line.data() + off, line.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {  // the reader is gone: stop writing events, keep the job going
            if (g_owned) ::close(g_fd);
            g_fd = -1, g_owned = false;
            return;
        }
        off += size_t(n);
    }
}

}  // namespace lincat
