// A thin, private bridge to stb_image / stb_image_write (compiled only in data/stb_impl.cpp with
// static linkage), so no other file includes the large headers.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ember::data::stb {
bool info_from_memory(const uint8_t* bytes, size_t size, int* w, int* h, int* c);
uint8_t* load_from_memory(const uint8_t* bytes, size_t size, int* w, int* h);  // RGB; free_image()
void free_image(uint8_t* p);
const char* failure_reason();
bool write_png(const char* path, int w, int h, int c, const uint8_t* px);
bool write_jpg(const char* path, int w, int h, int c, const uint8_t* px, int quality);
bool write_bmp(const char* path, int w, int h, int c, const uint8_t* px);
}  // namespace ember::data::stb
