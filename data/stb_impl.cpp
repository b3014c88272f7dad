// The one translation unit of ember that compiles stb_image and stb_image_write. Keeping the
// implementations here (and static) avoids clashes with any other copy of stb in a user's program.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#define STB_IMAGE_STATIC
#define STB_IMAGE_WRITE_STATIC
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

#include "data/stb_bridge.h"

namespace ember::data::stb {

bool info_from_memory(const uint8_t* bytes, size_t size, int* w, int* h, int* c) {
  return stbi_info_from_memory(bytes, int(size), w, h, c) != 0;
}

uint8_t* load_from_memory(const uint8_t* bytes, size_t size, int* w, int* h) {
  int c = 0;
  return stbi_load_from_memory(bytes, int(size), w, h, &c, 3);
}

void free_image(uint8_t* p) { stbi_image_free(p); }

const char* failure_reason() { return stbi_failure_reason(); }

bool write_png(const char* path, int w, int h, int c, const uint8_t* px) {
  return stbi_write_png(path, w, h, c, px, w * c) != 0;
}

bool write_jpg(const char* path, int w, int h, int c, const uint8_t* px, int quality) {
  return stbi_write_jpg(path, w, h, c, px, quality) != 0;
}

bool write_bmp(const char* path, int w, int h, int c, const uint8_t* px) {
  return stbi_write_bmp(path, w, h, c, px) != 0;
}

}  // namespace ember::data::stb
