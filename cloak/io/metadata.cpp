#include "cloak/io/metadata.h"

// exiv2 0.27's API is built on std::auto_ptr.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <exiv2/exiv2.hpp>

#include <algorithm>
#include <iterator>
#include <mutex>

#include "cloak/core/error.h"

namespace cloak {
namespace {

void init_exiv2() {
  static std::once_flag once;
  std::call_once(once, [] {
    Exiv2::XmpParser::initialize();
    Exiv2::LogMsg::setLevel(Exiv2::LogMsg::mute);
  });
}

Exiv2::Image::AutoPtr open(const std::vector<std::uint8_t>& bytes) {
  init_exiv2();
  return Exiv2::ImageFactory::open(bytes.data(), static_cast<long>(bytes.size()));
}

// What may carry a picture of the artwork: the EXIF thumbnail and other pages (IFD1 onwards,
// SubIFDs), maker notes (cameras hide preview JPEGs there), strip/tile pointers and XMP
// thumbnails. Only EXIF's main image, photo, GPS and interoperability tags are kept.
void drop_embedded_pictures(Exiv2::ExifData& exif, Exiv2::XmpData* xmp) {
  static const char* kKeptGroups[] = {"Image", "Photo", "GPSInfo", "Iop"};
  static const char* kPictureTags[] = {"StripOffsets",
                                       "StripByteCounts",
                                       "TileOffsets",
                                       "TileByteCounts",
                                       "JPEGInterchangeFormat",
                                       "JPEGInterchangeFormatLength",
                                       "SubIFDs",
                                       "MakerNote"};
  for (auto it = exif.begin(); it != exif.end();) {
    const std::string group = it->groupName(), tag = it->tagName();
    const bool kept_group =
        std::find(std::begin(kKeptGroups), std::end(kKeptGroups), group) != std::end(kKeptGroups);
    const bool picture =
        std::find(std::begin(kPictureTags), std::end(kPictureTags), tag) != std::end(kPictureTags);
    it = kept_group && !picture ? std::next(it) : exif.erase(it);
  }
  if (!xmp) return;
  for (auto it = xmp->begin(); it != xmp->end();)
    it = it->key().rfind("Xmp.xmp.Thumbnails", 0) == 0 ? xmp->erase(it) : std::next(it);
}

}  // namespace

ImageHeader read_metadata(const std::vector<std::uint8_t>& encoded, const std::string& name,
                          bool with_icc, ImageMetadata& metadata) {
  ImageHeader header;
  try {
    auto img = open(encoded);
    img->readMetadata();
    header.width = img->pixelWidth();
    header.height = img->pixelHeight();
    auto& exif = img->exifData();
    auto orientation = exif.findKey(Exiv2::ExifKey("Exif.Image.Orientation"));
    if (orientation != exif.end() && orientation->count() > 0)
      header.orientation = static_cast<int>(orientation->toLong());
    drop_embedded_pictures(exif, &img->xmpData());
    if (!exif.empty()) {
      Exiv2::Blob blob;
      Exiv2::ExifParser::encode(blob, Exiv2::littleEndian, exif);
      metadata.exif.assign(blob.begin(), blob.end());
    }
    if (!img->iptcData().empty()) {
      Exiv2::DataBuf buf = Exiv2::IptcParser::encode(img->iptcData());
      metadata.iptc.assign(buf.pData_, buf.pData_ + buf.size_);
    }
    if (!img->xmpData().empty()) {
      std::string packet;
      if (Exiv2::XmpParser::encode(packet, img->xmpData(), Exiv2::XmpParser::omitPacketWrapper) ==
          0)
        metadata.xmp = packet;
    } else {
      metadata.xmp = img->xmpPacket();  // unparsable: kept as it is, refused on writing
    }
    if (with_icc && img->iccProfileDefined()) {
      const Exiv2::DataBuf* icc = img->iccProfile();
      metadata.icc.assign(icc->pData_, icc->pData_ + icc->size_);
    }
  } catch (const Exiv2::AnyError& e) {
    throw Error(ErrorKind::Input, name + ": corrupt image header: " + e.what());
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {  // exiv2 lets std::out_of_range and others through
    throw Error(ErrorKind::Input, name + ": corrupt image header: " + e.what());
  }
  return header;
}

std::vector<std::uint8_t> embed_metadata(const std::vector<std::uint8_t>& encoded,
                                         const ImageMetadata& metadata, bool with_icc,
                                         const std::string& name) {
  try {
    auto img = open(encoded);
    // What the encoder wrote (PNG's iCCP and its name) must be known to exiv2, or it is dropped.
    img->readMetadata();
    if (!metadata.exif.empty()) {
      Exiv2::ExifData exif;
      Exiv2::ExifParser::decode(exif, metadata.exif.data(),
                                static_cast<long>(metadata.exif.size()));
      auto orientation = exif.findKey(Exiv2::ExifKey("Exif.Image.Orientation"));
      if (orientation != exif.end()) orientation->setValue("1");
      img->setExifData(exif);
    }
    if (!metadata.iptc.empty()) {
      Exiv2::IptcData iptc;
      Exiv2::IptcParser::decode(iptc, metadata.iptc.data(),
                                static_cast<std::uint32_t>(metadata.iptc.size()));
      img->setIptcData(iptc);
    }
    if (!metadata.xmp.empty()) {
      Exiv2::XmpData xmp;
      if (Exiv2::XmpParser::decode(xmp, metadata.xmp) != 0)
        throw Error(ErrorKind::Output, name + ": the input's XMP packet cannot be parsed");
      img->setXmpData(xmp);
    }
    if (with_icc && !metadata.icc.empty()) {
      Exiv2::DataBuf icc(metadata.icc.data(), static_cast<long>(metadata.icc.size()));
      img->setIccProfile(icc, false);
    }
    img->writeMetadata();
    Exiv2::BasicIo& io = img->io();
    io.open();
    Exiv2::DataBuf out = io.read(static_cast<long>(io.size()));
    io.close();
    std::vector<std::uint8_t> bytes(out.pData_, out.pData_ + out.size_);
    // The last line of defence: no unprotected copy of the artwork may ride along.
    auto check = open(bytes);
    check->readMetadata();
    if (!Exiv2::PreviewManager(*check).getPreviewProperties().empty())
      throw Error(ErrorKind::Output,
                  name + ": the output would still hold an unprotected preview image");
    return bytes;
  } catch (const Exiv2::AnyError& e) {
    throw Error(ErrorKind::Output, name + ": cannot write metadata: " + e.what());
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorKind::Output, name + ": cannot write metadata: " + e.what());
  }
}

void set_xmp_properties(ImageMetadata& metadata,
                        const std::vector<std::pair<std::string, std::string>>& properties) {
  init_exiv2();
  Exiv2::XmpData xmp;
  if (!metadata.xmp.empty() && Exiv2::XmpParser::decode(xmp, metadata.xmp) != 0) xmp.clear();
  for (const auto& [key, value] : properties) xmp[key] = value;
  std::string packet;
  if (Exiv2::XmpParser::encode(packet, xmp, Exiv2::XmpParser::omitPacketWrapper) == 0)
    metadata.xmp = packet;
}

}  // namespace cloak
#pragma GCC diagnostic pop
