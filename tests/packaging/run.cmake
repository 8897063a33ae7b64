# Builds and runs a consumer of jielong in a scratch folder.
#   MODE=find_package:     install jielong to a prefix, then find_package(jielong)
#                          and pkg-config --cflags jielong from that prefix
#   MODE=add_subdirectory: the consumer pulls the source tree in directly
cmake_minimum_required(VERSION 3.20)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(LAST_OUTPUT "${out}" PARENT_SCOPE)
endfunction()

if(MODE STREQUAL "find_package")
  set(prefix ${WORK_DIR}/prefix)
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/jielong-build -G ${GENERATOR}
      -DJIELONG_BUILD_TESTS=OFF -DJIELONG_BUILD_EXAMPLES=OFF -DJIELONG_BUILD_BENCH=OFF -DJIELONG_INSTALL=ON
      -DCMAKE_INSTALL_PREFIX=${prefix})
  run(${CMAKE_COMMAND} --install ${WORK_DIR}/jielong-build)
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/packaging/consumer -B ${WORK_DIR}/consumer-build -G ${GENERATOR}
      -DCMAKE_PREFIX_PATH=${prefix})
  run(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer-build)
  run(${WORK_DIR}/consumer-build/consumer)
  message(STATUS "consumer said: ${LAST_OUTPUT}")
  # pkg-config must find the installed .pc and point at the installed headers.
  file(GLOB pc_dirs ${prefix}/lib*/pkgconfig ${prefix}/lib/*/pkgconfig)
  set(ENV{PKG_CONFIG_PATH} "${pc_dirs}")
  find_program(PKG_CONFIG pkg-config REQUIRED)
  run(${PKG_CONFIG} --cflags jielong)
  if(NOT LAST_OUTPUT MATCHES "-I${prefix}/include")
    message(FATAL_ERROR "pkg-config --cflags jielong gave '${LAST_OUTPUT}', expected -I${prefix}/include")
  endif()
elseif(MODE STREQUAL "add_subdirectory")
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/packaging/subdir -B ${WORK_DIR}/build -G ${GENERATOR}
      -DJIELONG_SOURCE_DIR=${SOURCE_DIR})
  run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
  run(${WORK_DIR}/build/consumer)
  message(STATUS "consumer said: ${LAST_OUTPUT}")
else()
  message(FATAL_ERROR "unknown MODE '${MODE}'")
endif()
