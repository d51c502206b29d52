#include "util/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "util/error.h"

namespace lincat {

MappedFile MappedFile::open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        fail(path, ": cannot stat: ", std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        fail(path, ": not a regular file");
    }
    MappedFile m;
    m.path_ = path;
    m.size_ = size_t(st.st_size);
    if (m.size_ == 0) {
        ::close(fd);
        static const uint8_t empty = 0;
        m.data_ = &empty;
        return m;
    }
    void* p = mmap(nullptr, m.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    ::close(fd);
    if (p == MAP_FAILED) fail(path, ": mmap failed: ", std::strerror(e));
    size_t n = m.size_;
    m.holder_ = std::shared_ptr<void>(p, [n](void* q) { munmap(q, n); });
    m.data_ = static_cast<const uint8_t*>(p);
    return m;
}

void MappedFile::release(size_t offset, size_t length) const {
    if (!holder_ || offset >= size_) return;
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    size_t begin = (offset + page - 1) / page * page;             // whole pages inside the range only:
    size_t end = std::min(offset + length, size_) / page * page;  // neighbours may still be needed
    if (end > begin) madvise(const_cast<uint8_t*>(data_) + begin, end - begin, MADV_DONTNEED);
}

std::string read_file(const std::string& path, size_t max_bytes) {
    MappedFile m = MappedFile::open(path);
    if (m.size() > max_bytes) fail(path, ": file is ", m.size(), " bytes, larger than the limit of ", max_bytes);
    return std::string(reinterpret_cast<const char*>(m.data()), m.size());
}

AtomicFileWriter::AtomicFileWriter(std::string path)
    : path_(std::move(path)), tmp_path_(path_ + ".tmp." + std::to_string(getpid())) {
    fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail(tmp_path_, ": cannot create: ", std::strerror(errno));
}

AtomicFileWriter::~AtomicFileWriter() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_path_.c_str());
}

void AtomicFileWriter::write(const void* bytes, size_t n) {
    const char* p = static_cast<const char*>(bytes);
    while (n > 0) {
        ssize_t w = ::write(fd_, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            fail(path_, ": write failed: ", std::strerror(errno));
        }
        p += w;
        n -= size_t(w);
    }
}

void append_line_durable(const std::string& path, std::string_view line) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) fail(path, ": cannot open for appending: ", std::strerror(errno));
    std::string bytes = std::string(line) + "\n";
    const char* p = bytes.data();
    size_t n = bytes.size();
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            int e = errno;
            ::close(fd);
            fail(path, ": append failed: ", std::strerror(e));
        }
        p += w;
        n -= size_t(w);
    }
    if (fsync(fd) != 0) {
        int e = errno;
        ::close(fd);
        fail(path, ": fsync failed: ", std::strerror(e));
    }
    ::close(fd);
}

void AtomicFileWriter::commit() {
    if (fsync(fd_) != 0) fail(path_, ": fsync failed: ", std::strerror(errno));
    if (::close(fd_) != 0) {
        fd_ = -1;
        fail(path_, ": close failed: ", std::strerror(errno));
    }
    fd_ = -1;
    if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0)
        fail(path_, ": rename from temp file failed: ", std::strerror(errno));
    committed_ = true;
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
    AtomicFileWriter w(path);
    w.write(bytes.data(), bytes.size());
    w.commit();
}

}  // namespace lincat
