// checksum.txt of a folder (a checkpoint): "<sha256>  <file>" per line, in sha256sum's format,
// so `sha256sum -c checksum.txt` checks it too. Torch-free.
#pragma once

#include <string>

namespace lincat {

// Lists every regular file of `dir` but checksum.txt itself, sorted by name, into
// dir/checksum.txt (atomically). Returns the sha256 of checksum.txt.
std::string write_checksums(const std::string& dir);

// Checks dir/file against its line in dir/checksum.txt; a missing line or a mismatch is an
// error naming the file. Folders written before every file was listed (no line for
// linearization.json) are checked for the tensor files only, as they were written.
void verify_checksum(const std::string& dir, const std::string& file);

}  // namespace lincat
