// Files: read-only memory maps, whole-file reads, and atomic writes (temp + rename), so
// a crash or a full disk never leaves a half-written file under the final name.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace lincat {

// A read-only mapping of a whole file. Cheap to copy (shared).
class MappedFile {
  public:
    static MappedFile open(const std::string& path);

    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }
    const std::string& path() const { return path_; }
    // Drops the pages of [offset, offset + length) from this process's resident memory once
    // they have been copied out (a later read maps them in again from the page cache), so
    // a loader's RSS holds the copy, not the copy plus the file.
    void release(size_t offset, size_t length) const;

  private:
    std::shared_ptr<void> holder_;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
    std::string path_;
};

std::string read_file(const std::string& path, size_t max_bytes = size_t(1) << 31);

// Writes `path` by writing `path.tmp.<pid>`, fsync, then rename. Throws with the path and
// errno text on any failure (ENOSPC included) and removes the temp file.
void write_file_atomic(const std::string& path, std::string_view bytes);

// Appends `line` plus '\n' to `path` (created if missing) and fsyncs: a journal of finished
// work. A crash can leave at most a torn last line, which readers must ignore.
void append_line_durable(const std::string& path, std::string_view line);

// Streaming variant for large files: the writer callback gets a function to append bytes.
class AtomicFileWriter {
  public:
    explicit AtomicFileWriter(std::string path);
    ~AtomicFileWriter();  // removes the temp file unless commit() ran
    void write(const void* bytes, size_t n);
    void commit();

  private:
    std::string path_, tmp_path_;
    int fd_ = -1;
    bool committed_ = false;
};

}  // namespace lincat
