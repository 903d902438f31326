# Toolchain file: ATmega2560 (Arduino Mega 2560) at 16 MHz with avr-gcc and avr-libc: int is 16 bits,
# double is 32. Use: cmake -S firmware/avr -B build/firmware-avr -DCMAKE_TOOLCHAIN_FILE=cmake/avr-atmega2560.cmake
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR avr)

set(CMAKE_C_COMPILER avr-gcc)
set(CMAKE_AR avr-ar)
set(CMAKE_SIZE avr-size)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(RV_AVR_FLAGS "-mmcu=atmega2560 -DF_CPU=16000000UL")
set(CMAKE_C_FLAGS_INIT "${RV_AVR_FLAGS} -ffunction-sections -fdata-sections")
set(CMAKE_C_FLAGS_RELEASE_INIT "-O2 -DNDEBUG")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${RV_AVR_FLAGS} -Wl,--gc-sections")

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
