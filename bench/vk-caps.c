/*
 * What the GPU's Vulkan driver offers the WebGPU path, printed in a few lines: device and driver, subgroup
 * sizes, float16 arithmetic, and the cooperative-matrix shapes (VK_KHR_cooperative_matrix: tensor cores
 * on NVIDIA, XMX on Intel). Dawn exposes those shapes to WebGPU as "chromium-experimental-subgroup-matrix"
 * configs, and onnxruntime-node 1.30's subgroup-matrix MatMul/Gemm kernels run only on an f16 8x16x16
 * one (docs/webgpu-matmul.md): this says in milliseconds whether the GPU has it.
 * bench/device-prep.sh builds it into .device/vk-caps; bench/device-run.sh runs it first. Here (lavapipe):
 *
 *   gcc -O2 bench/vk-caps.c -o /tmp/vk-caps -lvulkan && VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.json /tmp/vk-caps
 *
 * The Vulkan headers here (1.3.239) predate VK_KHR_cooperative_matrix, so its structs are declared below
 * from the registry's definition (extension 507).
 */
#include <vulkan/vulkan.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STYPE_COOP_FEATURES ((VkStructureType)1000506000)
#define STYPE_COOP_PROPERTIES ((VkStructureType)1000506001)

typedef struct {
  VkStructureType sType;
  void *pNext;
  uint32_t MSize, NSize, KSize;
  int32_t AType, BType, CType, ResultType; /* VkComponentTypeKHR */
  VkBool32 saturatingAccumulation;
  int32_t scope; /* VkScopeKHR */
} CoopMatrixProperties;

typedef struct {
  VkStructureType sType;
  void *pNext;
  VkBool32 cooperativeMatrix, cooperativeMatrixRobustBufferAccess;
} CoopMatrixFeatures;

typedef VkResult (*GetCoopProps)(VkPhysicalDevice, uint32_t *, CoopMatrixProperties *);

static const char *component(int32_t t) {
  static const char *names[] = {"f16", "f32", "f64", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64"};
  if (t >= 0 && t <= 10) return names[t];
  if (t == 1000141000) return "bf16";
  return "other";
}

static const char *scope(int32_t s) {
  switch (s) {
    case 1: return "device";
    case 2: return "workgroup";
    case 3: return "subgroup";
    case 5: return "queue family";
    default: return "other";
  }
}

static int has_extension(VkPhysicalDevice dev, const char *name) {
  uint32_t n = 0;
  vkEnumerateDeviceExtensionProperties(dev, NULL, &n, NULL);
  VkExtensionProperties *ext = calloc(n, sizeof *ext);
  vkEnumerateDeviceExtensionProperties(dev, NULL, &n, ext);
  int found = 0;
  for (uint32_t i = 0; i < n && !found; i++) found = strcmp(ext[i].extensionName, name) == 0;
  free(ext);
  return found;
}

int main(void) {
  VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .apiVersion = VK_API_VERSION_1_3};
  VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
  VkInstance inst;
  VkResult r = vkCreateInstance(&ci, NULL, &inst);
  if (r != VK_SUCCESS) { printf("vk-caps: vkCreateInstance failed (%d): no Vulkan driver\n", r); return 1; }
  uint32_t count = 0;
  vkEnumeratePhysicalDevices(inst, &count, NULL);
  VkPhysicalDevice *devs = calloc(count ? count : 1, sizeof *devs);
  vkEnumeratePhysicalDevices(inst, &count, devs);
  if (count == 0) printf("vk-caps: no Vulkan device\n");
  GetCoopProps coop = (GetCoopProps)vkGetInstanceProcAddr(inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
  for (uint32_t d = 0; d < count; d++) {
    VkPhysicalDeviceDriverProperties driver = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceSubgroupSizeControlProperties sizes = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES, .pNext = &driver};
    VkPhysicalDeviceSubgroupProperties subgroup = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES, .pNext = &sizes};
    VkPhysicalDeviceProperties2 props = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &subgroup};
    vkGetPhysicalDeviceProperties2(devs[d], &props);
    CoopMatrixFeatures coopFeatures = {.sType = STYPE_COOP_FEATURES};
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES, .pNext = &coopFeatures};
    VkPhysicalDeviceFeatures2 feats = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f16};
    vkGetPhysicalDeviceFeatures2(devs[d], &feats);
    const VkPhysicalDeviceProperties *p = &props.properties;
    printf("device %u: %s (vendor 0x%04x, device 0x%04x), driver %s %s, Vulkan %u.%u\n", d, p->deviceName, p->vendorID, p->deviceID,
           driver.driverName, driver.driverInfo, VK_API_VERSION_MAJOR(p->apiVersion), VK_API_VERSION_MINOR(p->apiVersion));
    printf("  subgroup size %u (min %u, max %u), shaderFloat16 %u, maxComputeSharedMemorySize %u\n", subgroup.subgroupSize,
           sizes.minSubgroupSize, sizes.maxSubgroupSize, f16.shaderFloat16, p->limits.maxComputeSharedMemorySize);
    int khr = has_extension(devs[d], "VK_KHR_cooperative_matrix");
    printf("  VK_KHR_cooperative_matrix %s (feature %u), VK_NV_cooperative_matrix2 %s\n", khr ? "yes" : "no",
           coopFeatures.cooperativeMatrix, has_extension(devs[d], "VK_NV_cooperative_matrix2") ? "yes" : "no");
    if (!khr || !coop) continue;
    uint32_t n = 0;
    coop(devs[d], &n, NULL);
    CoopMatrixProperties *cm = calloc(n ? n : 1, sizeof *cm);
    for (uint32_t i = 0; i < n; i++) cm[i].sType = STYPE_COOP_PROPERTIES;
    coop(devs[d], &n, cm);
    for (uint32_t i = 0; i < n; i++) {
      printf("  cooperative matrix %ux%ux%u (MxNxK) A %s B %s C %s result %s, %s scope%s\n", cm[i].MSize, cm[i].NSize, cm[i].KSize,
             component(cm[i].AType), component(cm[i].BType), component(cm[i].CType), component(cm[i].ResultType), scope(cm[i].scope),
             cm[i].MSize == 8 && cm[i].NSize == 16 && cm[i].KSize == 16 && cm[i].AType == 0 && cm[i].ResultType == 0 ? "  <- onnxruntime 1.30's kernels' shape" : "");
    }
    free(cm);
  }
  free(devs);
  vkDestroyInstance(inst, NULL);
  return 0;
}
