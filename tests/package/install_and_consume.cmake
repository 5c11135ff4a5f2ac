# Installs tokenmix into a scratch prefix, then configures, builds and runs a consumer project
# that finds it with find_package(tokenmix). Run by CTest as `cmake -P`.
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

function(run_step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "step failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
endfunction()

run_step(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/lib-build"
         -DCMAKE_INSTALL_PREFIX=${prefix} -DTOKENMIX_BUILD_TESTS=OFF
         -DTOKENMIX_BUILD_BENCHMARKS=OFF -DTOKENMIX_BUILD_EXAMPLES=OFF)
run_step(${CMAKE_COMMAND} --install "${WORK_DIR}/lib-build")
if(NOT EXISTS "${prefix}/share/cmake/tokenmix/tokenmixConfigVersion.cmake")
  message(FATAL_ERROR "install did not write tokenmixConfigVersion.cmake under ${prefix}")
endif()
run_step(${CMAKE_COMMAND} -S "${CONSUMER_DIR}" -B "${WORK_DIR}/consumer-build"
         -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
run_step(${CMAKE_COMMAND} --build "${WORK_DIR}/consumer-build")
run_step("${WORK_DIR}/consumer-build/consumer")
