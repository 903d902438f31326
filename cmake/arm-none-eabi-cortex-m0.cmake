# Toolchain file: bare-metal Cortex-M0+ without FPU (RP2040 class; runs on QEMU's Cortex-M0 microbit,
# the same ARMv6-M instruction set). Floats in software (libgcc), newlib's ARMv6-M soft-float libm.
# Use: cmake -S firmware/m0 -B build/firmware-m0 -DCMAKE_TOOLCHAIN_FILE=cmake/arm-none-eabi-cortex-m0.cmake
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR cortex-m0plus)

set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_AR arm-none-eabi-ar)
set(CMAKE_SIZE arm-none-eabi-size)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(RV_M0_FLAGS "-mcpu=cortex-m0plus -mthumb -mfloat-abi=soft")
set(CMAKE_C_FLAGS_INIT "${RV_M0_FLAGS} -ffunction-sections -fdata-sections")
set(CMAKE_C_FLAGS_RELEASE_INIT "-O2 -DNDEBUG")
set(CMAKE_ASM_FLAGS_INIT "${RV_M0_FLAGS}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${RV_M0_FLAGS} -Wl,--gc-sections")

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
